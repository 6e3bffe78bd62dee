# The portcullis binary in a small Debian image, running as an unprivileged user.
#
# Targets:
# - `runtime` (the default: the last stage; what docker-compose.yml builds): compiles the
#   binary in the Rust image, then copies it into the runtime image.
# - `prebuilt`: the same runtime image around a binary compiled on the host by
#   `cargo build --release --locked` (target/release/portcullis; the host's glibc must be no
#   newer than bookworm's 2.36). scripts/container-check builds this one. It stands before the
#   Rust stage because the classic builder runs every stage up to its target: building it
#   never needs the Rust image.

FROM debian:bookworm-slim AS base
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin portcullis \
 && mkdir -p /data/keys && chmod 700 /data/keys && chown -R portcullis /data
USER portcullis
WORKDIR /data
ENV PORTCULLIS_BIND=0.0.0.0:8080 \
    PORTCULLIS_KEYS_DIR=/data/keys
EXPOSE 8080
ENTRYPOINT ["portcullis"]
CMD ["serve"]

FROM base AS prebuilt
COPY target/release/portcullis /usr/local/bin/portcullis

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin portcullis

FROM base AS runtime
COPY --from=build /src/target/release/portcullis /usr/local/bin/portcullis
