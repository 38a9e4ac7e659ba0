# One image carrying gatewayd and gbctl; the database and admin socket live in the volume.
#   docker build -t gemini-gateway .
#   docker run -d --name gw -p 8000:8000 -v gw-data:/var/lib/gateway/data gemini-gateway
#   docker logs gw            # the generated client token is printed once at first start
#   docker exec gw gbctl keys add AIza...
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p gatewayd -p gbctl

FROM debian:bookworm-slim
RUN useradd --system --home /var/lib/gateway gateway \
    && mkdir -p /var/lib/gateway/data && chown -R gateway /var/lib/gateway
COPY --from=build /src/target/release/gatewayd /src/target/release/gbctl /usr/local/bin/
USER gateway
# gatewayd's defaults are relative (data/gateway.db, data/gatewayd.sock): this is where they land,
# and where `docker exec gw gbctl ...` finds the socket.
WORKDIR /var/lib/gateway
VOLUME /var/lib/gateway/data
ENV GATEWAY_SERVER__LISTEN=0.0.0.0:8000
EXPOSE 8000
STOPSIGNAL SIGTERM
ENTRYPOINT ["gatewayd"]
