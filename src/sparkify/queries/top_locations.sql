-- The 10 locations (metropolitan areas) with the most plays, and their distinct listeners
SELECT location, COUNT(*) AS plays, COUNT(DISTINCT user_id) AS listeners
FROM songplays
WHERE location IS NOT NULL
GROUP BY location
ORDER BY plays DESC, location
LIMIT 10
