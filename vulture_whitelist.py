"""Names vulture cannot see used: `make lint` passes this file to vulture, never imports it.

Each group says who uses the names. Dead code does not belong here: delete it instead.
"""

# ruff: noqa: B018, F821

# Dataclass fields that flask-smorest serialises by attribute (the schemas are not scanned).
next_after  # services/api/core/clients.py Page
rate_per_s, rate_basis, finishes_at, duration_s, fits_before_end  # core/forecast.py Forecast
rejected  # core/importer.py ImportReport
broker  # resources/health.py ReadinessSchema
cancelled_messages  # shared/db/queries/recipients.py OptOutRecord
parse_clock  # shared/domain/campaigns.py, called by the campaign schemas
awaiting_receipt  # shared/domain/delivery.py DeliveryFigures, serialised by the stats schemas

# Attributes a library reads: pika's connection parameters, uvicorn's server, flask's g,
# psycopg2's connection (the scheduler's LISTEN connection, services/scheduler/notifications.py).
_.heartbeat
_.blocked_connection_timeout
_.connection_attempts
_.socket_timeout
_.client_properties
_.should_exit
_.log_token
_.autocommit

# The status tables: one module declares every move, and a unit test holds the statements
# to them (tests/unit/test_statuses.py).
MESSAGE_MOVES
FINAL_CAMPAIGN_STATUSES
MESSAGE_STATEMENTS
CAMPAIGN_STATEMENTS

# The notification status tables, held to each other by tests/integration/test_status_moves.py.
NOTIFICATION_MOVES
NOTIFICATION_STATEMENTS

# psycopg2's connection attribute, set so the scheduler's LISTEN connection never holds a
# transaction open (services/scheduler/notifications.py).
_.autocommit

# State that the tests observe through the public surface.
_.restarts  # deploy/stack.py Service, read by tests/unit/test_stack_supervision.py
_.restart  # deploy/stack.py Stack, used by tests/faults
_.is_attached  # services/sender/control.py
_.is_abandoned  # services/sender/dispatcher.py
_.is_closed  # shared/domain/breaker.py
_.is_sent  # shared/domain/outcomes.py
at_monotonic  # sandbox/gateway.py RequestRecord
_.set_script  # sandbox/gateway.py: the sandbox's scripting API
_.script_statuses

# The SDK's surface used outside this repository: Django loads the backend named by
# EMAIL_BACKEND and calls send_messages; applications read herald_notifications.
EmailBackend  # sdk/python/herald_client/django.py
_.send_messages
_.herald_notifications

# Called from services/api/schemas/receipts.py, which vulture does not read (see pyproject).
id_from_reference  # shared/domain/receipts.py

# Read by the webhook schemas (excluded above as reflection-read declarations).
EVENT_TYPES  # shared/domain/webhooks.py
