# The portcullis binary in a small image. Used by docker-compose.yml.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin portcullis

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 portcullis \
 && mkdir -p /data/keys && chmod 700 /data/keys && chown -R portcullis /data
COPY --from=build /src/target/release/portcullis /usr/local/bin/portcullis
USER portcullis
WORKDIR /data
ENV PORTCULLIS_BIND=0.0.0.0:8080 \
    PORTCULLIS_KEYS_DIR=/data/keys
EXPOSE 8080
ENTRYPOINT ["portcullis"]
CMD ["serve"]
