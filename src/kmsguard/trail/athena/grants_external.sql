-- trail_grant_external: grants created for a principal of another account than the key's. Reads kms_events.sql.
WITH grants AS (
  SELECT coalesce(key_arn, 'unknown-key:' || coalesce(recipient_account, '?') || ':' || coalesce(region, '?'))
           AS key_group,
         key_account, grantee, event_ts,
         regexp_extract(coalesce(grantee, ''), '^(?:arn:[^:]*:[^:]*::)?([0-9]{12})', 1) AS grantee_account
  FROM kms_events
  WHERE ok AND event_name = 'CreateGrant'
)
SELECT key_group, grantee_account, count(*) AS calls, array_agg(DISTINCT grantee) AS grantees,
       min(event_ts) AS first_ts, max(event_ts) AS last_ts
FROM grants
WHERE grantee_account <> '' AND grantee_account <> coalesce(key_account, '')
GROUP BY key_group, grantee_account
ORDER BY first_ts, key_group
