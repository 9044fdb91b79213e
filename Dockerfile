# syntax=docker/dockerfile:1
# Continuum in a small image: built with the Rust toolchain, run from distroless (glibc and
# libgcc, no shell, no package manager) as an unprivileged user.
#
#   docker build --build-arg CONTINUUM_GIT_COMMIT="$(git rev-parse --short HEAD)" -t continuum .
#   docker run --rm -p 8080:8080 continuum                      # the mock backend, at once
#   docker run --rm -p 8080:8080 -v "$PWD/config.yaml:/etc/continuum-router/config.yaml:ro" \
#       -v continuum-data:/var/lib/continuum-router continuum
#
# The config is /etc/continuum-router/config.yaml (the last place of the search path);
# packaging/config.yaml is the one built in. State goes to /var/lib/continuum-router.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# No .git in the build context (.dockerignore): the commit shown by `continuum --version`
# comes from this argument.
ARG CONTINUUM_GIT_COMMIT=unknown
ENV CONTINUUM_GIT_COMMIT=${CONTINUUM_GIT_COMMIT}
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin continuum \
    && install -D -m 0755 target/release/continuum /out/usr/local/bin/continuum \
    && install -d -m 0750 /out/var/lib/continuum-router

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/usr/local/bin/continuum /usr/local/bin/continuum
COPY --from=build --chown=65532:65532 /out/var/lib/continuum-router /var/lib/continuum-router
COPY packaging/config.yaml /etc/continuum-router/config.yaml
WORKDIR /var/lib/continuum-router
VOLUME ["/var/lib/continuum-router"]
# `~` in a config (the OAuth token store's default) is the state volume.
ENV CONTINUUM_BIND_ADDRESS=0.0.0.0:8080 \
    HOME=/var/lib/continuum-router
USER 65532:65532
EXPOSE 8080
# `continuum health-check` GETs http://127.0.0.1:8080/health: exit 0 on 200, else 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["continuum", "health-check", "--timeout", "3s"]
# SIGTERM (docker stop): stop accepting, drain for server.shutdown_grace, exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["continuum"]
CMD ["serve"]
