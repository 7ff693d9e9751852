-- Issue 29: the claim and the outcome become HOT updates. PostgreSQL 15 rewrites a row in
-- every index of its table unless no column that an index names (as a key or in its
-- predicate) changes; five indexes named `status`, one `lease_expires_at` and one
-- `updated_at`, which the claim and the outcome both change. The lookups that needed them
-- move to columns the hot path leaves alone and to the work table (notification_outbox),
-- which the database keeps in step with `status` itself (the triggers below), for every
-- writer: this binary, an operator's hand-written UPDATE, a test that sets a state.
--
-- The schema change is split over several migrations so that none holds a long lock on
-- notifications: this one adds columns (no rewrite) and triggers, the next back-fills, the
-- indexes are built CONCURRENTLY one per migration (PostgreSQL refuses two in one
-- statement string), and the last drops the old indexes.

-- ACCEPTED only: when its first publish is due (its schedule, or for one an older version
-- left unpublished, its creation). The scheduled and accepted passes read it.
ALTER TABLE notifications ADD COLUMN due_at TIMESTAMPTZ;

-- The work table: one row per QUEUED or SENDING notification. `published_at` is NULL
-- while its work message is owed (the outbox proper: first publish, or a retry's after its
-- delay) and the broker's confirm time after; `claimed_at` is set while it is SENDING.
-- The lost-message rule, the expired-lease pass and the oldest-unfinished gauge read it.
ALTER TABLE notification_outbox
    ADD COLUMN queue_channel TEXT,
    ADD COLUMN queue_priority TEXT,
    ADD COLUMN published_at TIMESTAMPTZ,
    ADD COLUMN claimed_at TIMESTAMPTZ;

CREATE FUNCTION notification_due_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.due_at := CASE WHEN NEW.status = 'ACCEPTED' THEN COALESCE(NEW.scheduled_at, NEW.created_at) END;
    RETURN NEW;
END $$;

-- Statement-level, with transition tables: one call and set-based statements per INSERT
-- or UPDATE of notifications, which the create, the claim and the outcome each make for a
-- whole batch (a row-level trigger's call per row cost 18 % of batch deliveries, measured).
-- Rows are written in id order, as every other multi-row write, so that two statements
-- that share rows wait for each other instead of deadlocking.
CREATE FUNCTION notification_work_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO notification_outbox AS w (notification_id, queue_channel, queue_priority, claimed_at)
    SELECT n.id, n.channel, n.priority, CASE WHEN n.status = 'SENDING' THEN now() END
      FROM new_rows n WHERE n.status IN ('QUEUED', 'SENDING') ORDER BY n.id
    ON CONFLICT (notification_id) DO UPDATE
        SET queue_channel = EXCLUDED.queue_channel, queue_priority = EXCLUDED.queue_priority,
            claimed_at = EXCLUDED.claimed_at, published_at = NULL;
    RETURN NULL;
END $$;

CREATE FUNCTION notification_work_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM notification_outbox w
     USING new_rows n JOIN old_rows o ON o.id = n.id
     WHERE w.notification_id = n.id AND o.status IS DISTINCT FROM n.status
       AND n.status NOT IN ('QUEUED', 'SENDING');
    -- Entering QUEUED, its message is owed again; entering SENDING, it is claimed.
    INSERT INTO notification_outbox AS w (notification_id, queue_channel, queue_priority, claimed_at)
    SELECT n.id, n.channel, n.priority, CASE WHEN n.status = 'SENDING' THEN now() END
      FROM new_rows n JOIN old_rows o ON o.id = n.id
     WHERE n.status IN ('QUEUED', 'SENDING') AND o.status IS DISTINCT FROM n.status
     ORDER BY n.id
    ON CONFLICT (notification_id) DO UPDATE
        SET queue_channel = EXCLUDED.queue_channel, queue_priority = EXCLUDED.queue_priority,
            claimed_at = EXCLUDED.claimed_at,
            published_at = CASE WHEN EXCLUDED.claimed_at IS NULL THEN NULL ELSE w.published_at END;
    RETURN NULL;
END $$;

-- The due_at triggers' WHEN conditions are evaluated without calling the function, so only
-- a change to or from ACCEPTED calls it.
CREATE TRIGGER notifications_due_at_on_insert BEFORE INSERT ON notifications
    FOR EACH ROW WHEN (NEW.status = 'ACCEPTED') EXECUTE FUNCTION notification_due_at();
CREATE TRIGGER notifications_due_at_on_update BEFORE UPDATE OF status, scheduled_at, created_at ON notifications
    FOR EACH ROW WHEN ('ACCEPTED' IN (OLD.status, NEW.status)
        AND (OLD.status, OLD.scheduled_at, OLD.created_at) IS DISTINCT FROM (NEW.status, NEW.scheduled_at, NEW.created_at))
    EXECUTE FUNCTION notification_due_at();
CREATE TRIGGER notifications_work_on_insert AFTER INSERT ON notifications
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION notification_work_inserted();
-- Every UPDATE (PostgreSQL allows no column list with transition tables): the function
-- compares each row's old and new status.
CREATE TRIGGER notifications_work_on_update AFTER UPDATE ON notifications
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION notification_work_updated();

-- Every FAILED row has its reason (the outcome always writes one), so the dead-letter
-- lookups can index `failure_reason IS NOT NULL`, which the hot path never changes.
-- NOT VALID: checked for every row written from now on, without scanning the table.
ALTER TABLE notifications ADD CONSTRAINT notifications_failed_has_reason
    CHECK (status <> 'FAILED' OR failure_reason IS NOT NULL) NOT VALID;
