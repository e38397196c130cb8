-- Customers' personal data in the portfolio (issue 16; decision 0148).
--
-- portfolio_customers and portfolio_customer_seals are part of the read model (a function of
-- the events, rebuilt with the rest): the latest sealed personal data per customer on a
-- metering point, and which key sealed each value an event carries, so erasure finds every key
-- of a customer. They hold ciphertext only.
--
-- portfolio_data_keys is NOT part of the read model: it is the key store. Each customer's own
-- AES-256 key lives here only, wrapped (encrypted) by the deployment keyring
-- (AFREGNING_PORTFOLIO_KEYS / _KEY_FILE). Deleting a customer's rows erases everything sealed
-- under their keys, on every topic and in every table (crypto-shredding). Back it up with the
-- keyring; never rebuild it.

CREATE TABLE IF NOT EXISTS portfolio_customers (
    metering_point text NOT NULL,
    customer_key text NOT NULL,
    sealed text NOT NULL,
    PRIMARY KEY (metering_point, customer_key)
);

CREATE TABLE IF NOT EXISTS portfolio_customer_seals (
    metering_point text NOT NULL,
    sequence bigint NOT NULL,
    customer_key text NOT NULL,
    key_id text NOT NULL,
    PRIMARY KEY (metering_point, sequence)
);

CREATE INDEX IF NOT EXISTS portfolio_customer_seals_customer
    ON portfolio_customer_seals (customer_key);

CREATE TABLE IF NOT EXISTS portfolio_data_keys (
    key_id text PRIMARY KEY,
    -- the customer whose data the key seals (our customer number)
    customer_key text NOT NULL,
    -- the key encrypted under the deployment keyring's active key at creation
    wrapped text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- at most one key in use per customer; erased customers get a new key if they come back
CREATE UNIQUE INDEX IF NOT EXISTS portfolio_data_keys_customer
    ON portfolio_data_keys (customer_key);

CREATE TABLE IF NOT EXISTS portfolio_erasures (
    customer_key text NOT NULL,
    erased_at timestamptz NOT NULL DEFAULT now(),
    -- the keys deleted, so an audit can tell which ciphertexts became unreadable
    key_ids text[] NOT NULL,
    -- the last day we supplied the customer, and the retention that made it due
    last_supplied date,
    retention_days integer,
    actor text NOT NULL,
    PRIMARY KEY (customer_key, erased_at)
);
