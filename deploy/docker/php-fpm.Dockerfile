# syntax=docker/dockerfile:1
# Debian 12's PHP-FPM 8.2 with the chat extension, for the demo stack (compose.yaml): the
# extension is built against the same Debian PHP it runs in. From the repository root:
#   docker build -f deploy/docker/php-fpm.Dockerfile -t chat-php-fpm .

ARG RUST_VERSION=1
FROM rust:${RUST_VERSION}-bookworm AS build
# ext-php-rs reads PHP's headers through php-config and generates bindings with libclang.
RUN apt-get update \
 && apt-get install -y --no-install-recommends php-dev libclang-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# bindgen looks for libclang where Debian keeps it, as the Makefile does.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    LIBCLANG_PATH=$(ls -d /usr/lib/llvm-*/lib | sort -V | tail -1) \
    cargo build --release --locked -p chat-ext \
 && cp target/release/libchat.so /chat.so

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends php8.2-fpm \
 && rm -rf /var/lib/apt/lists/* \
 && sed -i 's|^error_log = .*|error_log = /proc/self/fd/2|' /etc/php/8.2/fpm/php-fpm.conf
COPY --from=build /chat.so /usr/local/lib/php/chat.so
COPY deploy/docker/php-chat.ini /etc/php/8.2/fpm/conf.d/30-chat.ini
COPY deploy/docker/php-fpm-pool.conf /etc/php/8.2/fpm/pool.d/zz-docker.conf
EXPOSE 9000
CMD ["php-fpm8.2", "--nodaemonize"]
