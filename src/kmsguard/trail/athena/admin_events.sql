-- Dangerous administrative events that succeeded (trail_key_deletion_scheduled, trail_key_disabled,
-- trail_rotation_disabled, trail_alias_deleted, trail_key_material_imported, trail_key_material_deleted),
-- key policy changes (trail_policy_widened: judge the policy text with `kmsguard policy`), and grants.
SELECT eventtime, eventname, awsregion, recipientaccountid,
       coalesce(element_at(filter(resources, r -> r.arn LIKE '%:key/%'), 1).arn,
                json_extract_scalar(requestparameters, '$.keyId')) AS key_arn,
       useridentity.arn AS principal, sourceipaddress, eventid,
       json_extract_scalar(requestparameters, '$.aliasName') AS alias_name,
       json_extract_scalar(requestparameters, '$.granteePrincipal') AS grantee,
       json_extract_scalar(requestparameters, '$.policy') AS new_policy
FROM cloudtrail_logs
WHERE eventsource = 'kms.amazonaws.com'
  AND errorcode IS NULL
  AND eventname IN ('ScheduleKeyDeletion', 'DisableKey', 'DisableKeyRotation', 'DeleteAlias', 'ImportKeyMaterial',
                    'DeleteImportedKeyMaterial', 'PutKeyPolicy', 'CreateGrant')
ORDER BY eventtime
