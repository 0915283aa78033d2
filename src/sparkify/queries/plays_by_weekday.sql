-- Plays and distinct listeners per day of the week (ISO: 1 = Monday ... 7 = Sunday, UTC)
SELECT t.weekday,
       CASE t.weekday WHEN 1 THEN 'Monday' WHEN 2 THEN 'Tuesday' WHEN 3 THEN 'Wednesday' WHEN 4 THEN 'Thursday'
                      WHEN 5 THEN 'Friday' WHEN 6 THEN 'Saturday' WHEN 7 THEN 'Sunday' END AS day_name,
       COUNT(*) AS plays,
       COUNT(DISTINCT p.user_id) AS listeners
FROM songplays p
JOIN "time" t ON t.start_time = p.start_time
GROUP BY t.weekday
ORDER BY t.weekday
