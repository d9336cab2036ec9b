"""Getting recorded sends to the sender and the sender's results back (docs/delivery/index.md).

    send (web) ──tx──> SentEmail + Delivery rows + OutboxMessage
                          │ on commit
             broker mode  ▼                              embedded mode (no RABBITMQ_URL)
        publish (confirms) ──> RabbitMQ ──> emailsender      worker thread in the web process:
        relay: rows whose publish failed     │               claim row, emailsender.handle(),
                                   results queue             apply the outcome
                                             ▼
                         results process: apply them in bulk

Modules: work (the message), broker (publisher), outbox (enqueue, dispatch, relay),
results (status updates, requeue), embedded (in-process worker), results_consumer (the `results` process).
"""
