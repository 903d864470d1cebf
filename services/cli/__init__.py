"""`herald`: the operator's command line over the REST API (and RabbitMQ for dead letters)."""
