//! One integration binary against the real PostgreSQL, RabbitMQ and Redis.

mod api;
mod broker;
mod cli;
mod helpers;
mod layers;
mod operator;
mod packaging;
mod primary;
mod providers;
mod prune;
mod ratelimit;
mod scanner;
mod security;
mod sentinel;
mod store;
mod terminal;
mod tls;
mod worker;
