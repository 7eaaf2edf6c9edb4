# hashgate container: build stage on Debian 12 with the same scripts as the
# README and CI (scripts/deps.sh, scripts/build.sh, scripts/install.sh), and a
# slim runtime stage with only the runtime libraries (scripts/runtime-deps.sh).
# Every RUN step is one of those scripts, and CI runs each of them, so a
# broken step fails CI even though CI has no Docker engine.
#
# CI builds and runs this image with Debian's podman (tests/deploy/test_image.py).
#
#   docker build -t hashgate .
#   docker run --stop-timeout 30 -p 3333:3333 -p 9100:9100 \
#     -v $PWD/farm.yaml:/etc/hashgate/hashgate.yaml:ro hashgate
#
# --stop-timeout: a stop drains for admin.drain_seconds (10 by default) plus
# up to 5 s for the pools' answers; the engine's default 10 s would SIGKILL it.

FROM debian:bookworm AS build
WORKDIR /src
COPY scripts/deps.sh scripts/deps.sh
RUN bash scripts/deps.sh
COPY . .
# Only the gateway (not the tests); install.sh strips it.
RUN bash scripts/build.sh release hashgate
RUN bash scripts/install.sh /out

FROM debian:bookworm-slim
COPY scripts/runtime-deps.sh /tmp/runtime-deps.sh
RUN bash /tmp/runtime-deps.sh
COPY --from=build /out/usr/local/bin/hashgate /usr/local/bin/hashgate
# The config is mounted here (Helm: a ConfigMap); the default runs the
# built-in test pool. The admin server listens on all interfaces in the
# container so probes and Prometheus reach it.
COPY --from=build /out/usr/local/etc/hashgate/hashgate.yaml /etc/hashgate/hashgate.yaml
ENV HASHGATE_ADMIN_BIND=0.0.0.0:9100
USER 10001:10001
EXPOSE 3333 3443 9100
# The probe reads the admin address from the config (and HASHGATE_ADMIN_BIND),
# so moving the admin server keeps the container healthy.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/hashgate", "--healthcheck", "--config", "/etc/hashgate/hashgate.yaml"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/hashgate"]
CMD ["--config", "/etc/hashgate/hashgate.yaml"]
