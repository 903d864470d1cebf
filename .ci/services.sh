#!/usr/bin/env bash
# Make sure PostgreSQL and RabbitMQ are up on loopback; start them if not.
set -euo pipefail

if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 60); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432

if ! rabbitmqctl -q status >/dev/null 2>&1; then
  rabbitmq-server -detached
fi
rabbitmqctl -q wait --timeout 120 /var/lib/rabbitmq/mnesia/rabbit@localhost.pid >/dev/null 2>&1 \
  || rabbitmqctl -q await_startup --timeout 120
rabbitmqctl -q status >/dev/null && echo "RabbitMQ is up"
