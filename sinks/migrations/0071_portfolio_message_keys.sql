-- Keys of DataHub's messages with personal data (issue 16; decision 0148).
--
-- The connector seals the CPR/CVR and names in an inbound RSM-028 before it publishes it, when
-- it cannot yet know whose they are. It seals each such message under a key of its own
-- (origin 'message', no customer); when the portfolio's read model projects the customer
-- data event, the key is adopted by that customer (customer_key set). Erasing a customer then
-- deletes their own key and every adopted message key; a message key never adopted is erased
-- by the retention job on its own once old enough.

ALTER TABLE portfolio_data_keys ALTER COLUMN customer_key DROP NOT NULL;
ALTER TABLE portfolio_data_keys ADD COLUMN IF NOT EXISTS origin text NOT NULL DEFAULT 'customer';
DROP INDEX IF EXISTS portfolio_data_keys_customer;
-- one own key per customer; any number of adopted message keys
CREATE UNIQUE INDEX IF NOT EXISTS portfolio_data_keys_own
    ON portfolio_data_keys (customer_key) WHERE origin = 'customer';
CREATE INDEX IF NOT EXISTS portfolio_data_keys_customer_all
    ON portfolio_data_keys (customer_key);
