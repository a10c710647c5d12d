-- Per key: calls, cryptographic calls, errors, distinct principals and accounts (not AWS services acting on their
-- own), Regions, first and last use, last successful cryptographic use (epoch seconds). Reads kms_events.sql.
SELECT key_arn,
       count(*) AS calls,
       count_if(is_crypto) AS crypto_calls,
       count_if(NOT ok) AS errors,
       count(DISTINCT CASE WHEN human THEN principal END) AS principals,
       count(DISTINCT CASE WHEN human THEN principal_account END) AS accounts,
       count(DISTINCT region) AS regions,
       min(event_ts) AS first_ts,
       max(event_ts) AS last_ts,
       max(CASE WHEN is_crypto AND ok THEN event_ts END) AS last_crypto_ts
FROM kms_events
WHERE key_arn IS NOT NULL
GROUP BY key_arn
ORDER BY calls DESC, key_arn
