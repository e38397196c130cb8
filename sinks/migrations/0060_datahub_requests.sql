-- On-demand requests to DataHub for its calculation results (issue 17, docs/reconciliation.md):
-- RSM-016 RequestAggregatedMeasureData (BRS-026, answered with RSM-014) and RSM-017
-- RequestWholesaleSettlement (BRS-028, answered with RSM-019). Written by the API and
-- `afregning reconcile request` (state 'pending', with the audit row where the API made it);
-- `afregning reconcile relay` publishes pending ones to the outbound-requests topic and
-- records the connector's outcome and DataHub's answers, matched by the series' mRID.
CREATE TABLE datahub_request (
    request_id text PRIMARY KEY,
    -- The document's mRID, and its series' mRID that DataHub's answers name in
    -- originalTransactionIDReference_Series.mRID.
    message_id text NOT NULL UNIQUE,
    transaction_id text NOT NULL UNIQUE,
    requested_data text NOT NULL
        CHECK (requested_data IN ('aggregated_measure_data', 'wholesale_settlement')),
    business_reason text NOT NULL,
    settlement_version text,
    grid_area text NOT NULL,
    month_start date NOT NULL,
    charge_owner_gln text,
    period_start timestamptz NOT NULL,
    period_end timestamptz NOT NULL,
    -- The CIM JSON document as sent.
    document text NOT NULL,
    requested_by text NOT NULL CHECK (requested_by <> ''),
    reason text NOT NULL CHECK (reason <> ''),
    requested_at timestamptz NOT NULL DEFAULT now(),
    -- pending: recorded, not yet on the outbound topic; sent: on it; accepted / rejected /
    -- failed: the connector's POST to DataHub; answered: DataHub's results naming the request
    -- arrived; refused: DataHub's reject document naming it arrived.
    state text NOT NULL
        CHECK (state IN ('pending', 'sent', 'accepted', 'rejected', 'failed', 'answered', 'refused')),
    state_changed_at timestamptz NOT NULL DEFAULT now(),
    http_status integer,
    correlation_id text,
    -- DataHub's error document (rejected), the transport error (failed), or the reject's reasons (refused).
    response text,
    -- The answering documents' MessageIds and their series' mRIDs (the connector puts each
    -- series of a document on the topic as its own record, so a series is the unit counted).
    answer_message_ids text[] NOT NULL DEFAULT '{}',
    answer_series_ids text[] NOT NULL DEFAULT '{}',
    answered_at timestamptz
);

CREATE INDEX datahub_request_pending ON datahub_request (requested_at) WHERE state = 'pending';
CREATE INDEX datahub_request_requested ON datahub_request (requested_at DESC);
