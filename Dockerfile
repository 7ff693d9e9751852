# syntax=docker/dockerfile:1

# ---- build -------------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /app
ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0 \
    SQLX_OFFLINE=true

# Dependencies first, against a placeholder main, so this layer is reused until
# Cargo.toml or Cargo.lock changes. (A target declared in Cargo.toml with an
# explicit path, e.g. a [[bench]], needs its own placeholder here.)
COPY Cargo.toml Cargo.lock ./
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && cargo build --release --locked \
 && rm -rf src

# The crate itself. Migrations under migrations/ are embedded at compile time.
# The fingerprint is removed because COPY keeps the source files' own mtimes,
# which may be older than the placeholder build.
# The symbol table is stripped from the image's copy only (4 MB of 21): panic messages keep
# their file and line, backtraces lose function names.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    rm -rf target/release/.fingerprint/dispatchctl-* \
 && cargo build --release --locked --bin dispatchctl \
 && strip --strip-all -o /usr/local/bin/dispatchctl target/release/dispatchctl

# ---- runtime -----------------------------------------------------------------
FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 dispatch \
 && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /nonexistent \
      --no-create-home --shell /usr/sbin/nologin dispatch

# Only the CA bundle, from the builder's ca-certificates: the AMQP and Redis clients
# read it for amqps:// and rediss:// (rustls-native-certs). Installing the package here
# would add openssl and libssl (9 MB) that the binary, built with rustls, never loads.
COPY --from=builder /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=builder /usr/local/bin/dispatchctl /usr/local/bin/dispatchctl

LABEL org.opencontainers.image.title="dispatchctl" \
      org.opencontainers.image.description="Notification dispatch engine and its operations toolkit" \
      org.opencontainers.image.licenses="MIT"

USER 10001:10001
# Root-owned and empty: no stray .env is picked up from the working directory.
WORKDIR /app
ENV LOG_FORMAT=json

# 8080: HTTP API (serve); 9091: worker ops (worker --listen); 9092: scanner ops (scan-retries --loop --listen)
EXPOSE 8080 9091 9092
STOPSIGNAL SIGTERM
# Fits `serve`: with no --url it checks /livez where API_HOST and API_PORT put it, over HTTPS
# when TLS_CERT_FILE is set, so a changed port or TLS needs no edit here. The worker and
# scanner override it with their own port (see docker-compose.yml).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["dispatchctl", "healthcheck"]

ENTRYPOINT ["dispatchctl"]
CMD ["serve"]
