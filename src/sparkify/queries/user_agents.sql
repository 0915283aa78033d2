-- Plays and listeners by browser and by operating system, parsed from the user agent (rules in docs/queries.md)
SELECT dimension, name, COUNT(*) AS plays, COUNT(DISTINCT user_id) AS listeners
FROM (
    SELECT 'browser' AS dimension, user_id,
           CASE
               WHEN user_agent IS NULL THEN 'Unknown'
               WHEN user_agent LIKE '%Edge/%' OR user_agent LIKE '%Edg/%' THEN 'Edge'
               WHEN user_agent LIKE '%OPR/%' OR user_agent LIKE '%Opera%' THEN 'Opera'
               WHEN user_agent LIKE '%Chromium/%' THEN 'Chromium'
               WHEN user_agent LIKE '%Chrome/%' OR user_agent LIKE '%CriOS/%' THEN 'Chrome'
               WHEN user_agent LIKE '%Firefox/%' OR user_agent LIKE '%FxiOS/%' THEN 'Firefox'
               WHEN user_agent LIKE '%MSIE %' OR user_agent LIKE '%Trident/%' THEN 'Internet Explorer'
               WHEN user_agent LIKE '%Safari/%' THEN 'Safari'
               ELSE 'Other'
           END AS name
    FROM songplays
    UNION ALL
    SELECT 'os' AS dimension, user_id,
           CASE
               WHEN user_agent IS NULL THEN 'Unknown'
               WHEN user_agent LIKE '%iPhone%' OR user_agent LIKE '%iPad%' OR user_agent LIKE '%iPod%' THEN 'iOS'
               WHEN user_agent LIKE '%Android%' THEN 'Android'
               WHEN user_agent LIKE '%Windows%' THEN 'Windows'
               WHEN user_agent LIKE '%Macintosh%' OR user_agent LIKE '%Mac OS X%' THEN 'macOS'
               WHEN user_agent LIKE '%CrOS%' THEN 'Chrome OS'
               WHEN user_agent LIKE '%Linux%' OR user_agent LIKE '%X11%' THEN 'Linux'
               ELSE 'Other'
           END AS name
    FROM songplays
) ua
GROUP BY dimension, name
ORDER BY dimension, plays DESC, name
