-- trail_decrypt_failure_burst: more than 5 failed calls on one key in a 5-minute window.
WITH failed AS (
  SELECT coalesce(element_at(filter(resources, r -> r.arn LIKE '%:key/%'), 1).arn,
                  json_extract_scalar(requestparameters, '$.keyId'),
                  'unknown-key:' || recipientaccountid || ':' || awsregion) AS key_arn,
         to_unixtime(from_iso8601_timestamp(eventtime)) AS ts, errorcode,
         coalesce(useridentity.sessioncontext.sessionissuer.arn, useridentity.arn) AS principal
  FROM cloudtrail_logs
  WHERE eventsource = 'kms.amazonaws.com' AND errorcode IS NOT NULL
)
SELECT key_arn, from_unixtime(ts - mod(ts, 300)) AS window_start, count(*) AS errors,
       count(DISTINCT principal) AS principals, array_agg(DISTINCT errorcode) AS error_codes
FROM failed
GROUP BY key_arn, ts - mod(ts, 300)
HAVING count(*) > 5
ORDER BY window_start
