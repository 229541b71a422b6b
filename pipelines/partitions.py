"""Ingestion batches as dynamic partitions: a new folder under ``$MAMMO_HOME/cohorts``
becomes a partition (the ``new_batch_sensor`` adds it), so a new batch costs only its own work."""

import dagster as dg

batch_partitions = dg.DynamicPartitionsDefinition(name="batch")
