-- Dangerous administrative events that succeeded, per key and event: ScheduleKeyDeletion
-- (trail_key_deletion_scheduled), DisableKey (trail_key_disabled), DisableKeyRotation (trail_rotation_disabled),
-- DeleteAlias (trail_alias_deleted), ImportKeyMaterial (trail_key_material_imported), DeleteImportedKeyMaterial
-- (trail_key_material_deleted). Reads kms_events.sql.
SELECT coalesce(key_arn, 'unknown-key:' || coalesce(recipient_account, '?') || ':' || coalesce(region, '?'))
         AS key_group,
       event_name, count(*) AS calls, min(event_ts) AS first_ts, max(event_ts) AS last_ts,
       array_agg(DISTINCT alias_name) FILTER (WHERE alias_name IS NOT NULL) AS aliases
FROM kms_events
WHERE ok AND event_name IN ('DeleteAlias', 'DeleteImportedKeyMaterial', 'DisableKey', 'DisableKeyRotation',
                            'ImportKeyMaterial', 'ScheduleKeyDeletion')
GROUP BY 1, event_name
ORDER BY first_ts, key_group, event_name
