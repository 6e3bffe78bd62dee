//! Integration tests: the real server over real HTTP, on SQLite and on PostgreSQL.

// A panic here is a failed test: unwrapping is the point (`[lints.clippy]` in Cargo.toml).
#![allow(clippy::unwrap_used)]

mod common;

mod account;
mod admin;
mod api_keys;
mod atomic_grants;
mod audit;
mod browser;
mod cli;
mod code_flow;
mod discovery;
mod files;
mod health;
mod hostile_input;
mod introspection;
mod keys;
mod logging;
mod memory;
mod migrations;
mod oauth2_crate;
mod observability;
mod outage;
mod pages;
mod postgres_tls;
mod propagation;
mod pruning;
mod rate_limits;
mod refresh_retry;
mod registration;
mod replicas;
mod revocation;
mod slow_clients;
mod sqlite_write_failures;
mod token;
mod usage;
mod users;
mod webhooks;
