# Builds the one `afregning` binary; every service in docker-compose.yml runs it.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends clang libclang-dev cmake pkg-config libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --package afregning

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/afregning afregning \
    && mkdir -p /var/lib/afregning && chown afregning /var/lib/afregning
COPY --from=build /src/target/release/afregning /usr/local/bin/afregning
ENV AFREGNING_STATE_DIR=/var/lib/afregning
EXPOSE 8080 9100
USER afregning
ENTRYPOINT []
CMD ["afregning", "--help"]
