-- trail_decrypt_failure_burst: more than 5 failed calls on one key in a 5-minute window (a failed call that names
-- no key is grouped per account and Region). Reads kms_events.sql.
WITH failed AS (
  SELECT coalesce(key_arn, 'unknown-key:' || coalesce(recipient_account, '?') || ':' || coalesce(region, '?'))
           AS key_group,
         event_ts - event_ts % 300 AS window_start, error_code, principal
  FROM kms_events
  WHERE NOT ok
)
SELECT key_group, window_start, count(*) AS errors, count(DISTINCT principal) AS principals,
       array_agg(DISTINCT error_code) AS error_codes
FROM failed
GROUP BY key_group, window_start
HAVING count(*) > 5
ORDER BY window_start, key_group
