-- Plays and distinct listeners per hour of the day (UTC), hours without plays omitted
SELECT t.hour, COUNT(*) AS plays, COUNT(DISTINCT p.user_id) AS listeners
FROM songplays p
JOIN "time" t ON t.start_time = p.start_time
GROUP BY t.hour
ORDER BY t.hour
