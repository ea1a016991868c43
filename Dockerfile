# Build stage: the release binary.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY proto ./proto
COPY benches ./benches
COPY testdata ./testdata
RUN cargo build --release --locked --bin promlite

# Runtime stage: a small Debian with the binary, running as a non-root user.
FROM debian:bookworm-slim
# The system CA roots, for https scrape targets and Alertmanagers without a tls_config CA.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home /var/lib/promlite promlite \
    && mkdir -p /var/lib/promlite/data && chown -R promlite /var/lib/promlite
COPY --from=build /src/target/release/promlite /usr/local/bin/promlite
USER promlite
VOLUME ["/var/lib/promlite/data"]
WORKDIR /var/lib/promlite
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/promlite"]
CMD ["--storage.tsdb.path=/var/lib/promlite/data"]
