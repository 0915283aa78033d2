"""The shape of the real data, as small constants.

Every number here was measured on the real sample (71 songs, 30 log files,
8,056 events in ../shared/data/sparkify) with
`python -m sparkify.generate.profile ../shared/data/sparkify`; the key it
printed is named in each comment. Quantile lists are at PROFILE_QUANTILES and
are sampled as an inverse CDF. No data row of the sample is copied here.
"""

from __future__ import annotations

from sparkify.generate.profile import QUANTILES as PROFILE_QUANTILES  # noqa: F401 (read as params.PROFILE_QUANTILES)

START_DAY = "2018-11-01"
"""The sample's first day; generated days follow it."""

SAMPLE_EVENTS = 8056
SAMPLE_USERS = 97
"""users: a default --users scales with --events at the sample's ratio."""

TS_MILLIS = 796
"""ts_millis: every real ts (and registration) ends in .796 s, Eventsim's clock phase."""

PAGES = (
    # name, method, status: every (page, method, status) of the sample is one of these
    ("NextSong", "PUT", 200),
    ("Home", "GET", 200),
    ("Login", "PUT", 307),
    ("Logout", "PUT", 307),
    ("Downgrade", "GET", 200),
    ("Settings", "GET", 200),
    ("Help", "GET", 200),
    ("About", "GET", 200),
    ("Upgrade", "GET", 200),
    ("Save Settings", "PUT", 307),
    ("Error", "GET", 404),
    ("Submit Upgrade", "PUT", 307),
    ("Submit Downgrade", "PUT", 307),
)

LOGGED_IN_PAGE_SHARE = {
    # logged_in_page_share_by_level; "Plan" is Upgrade for a free user and Downgrade
    # for a paid one, "Submit" its confirmation (which flips the level). Home is
    # lowered by the Logout share: every re-login adds a Home of its own.
    "free": {"NextSong": 0.7329, "Home": 0.1980, "Logout": 0.0173, "Plan": 0.0125, "Settings": 0.0083,
             "Submit": 0.0048, "Help": 0.0036, "About": 0.0030, "Save Settings": 0.0012, "Error": 0.0012},
    "paid": {"NextSong": 0.9176, "Home": 0.0350, "Logout": 0.0100, "Plan": 0.0098, "Settings": 0.0069,
             "Submit": 0.0002, "Help": 0.0053, "About": 0.0028, "Save Settings": 0.0013, "Error": 0.0011},
}

LOGGED_OUT_PAGE_SHARE = {"Home": 0.5, "About": 0.3, "Help": 0.2}
"""logged_out_page_share (Home 171, Login 92, About 14, Help 9 events) without the pages the generator
places itself: the Login before a login, the Home that opens a session or follows a Logout."""

SESSION_LENGTH_QUANTILES = {
    # session_length_quantiles_by_level (events per session, by the level it starts with)
    "free": (1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 7.0, 11.9, 66.0),
    "paid": (1.0, 3.9, 7.0, 11.0, 15.6, 20.5, 28.4, 39.0, 51.2, 72.1, 82.2, 114.04, 128.0),
}

ANONYMOUS_SESSION_SHARE = 0.0319
"""anonymous_session_share: sessions that never log in."""
ANONYMOUS_SESSION_LENGTHS = {1: 0.8333, 2: 0.1333, 4: 0.0334}
"""anonymous_session_lengths."""
SESSION_STARTS_LOGGED_OUT = 0.0538
"""sessions_starting_logged_out: a user session that opens with Login (half of them with Home first)."""
LOGGED_OUT_BROWSE = {0: 0.6, 1: 0.3, 2: 0.1}
"""Pages browsed logged out after a Logout besides the first Home (then Login, if the session goes on):
chosen so that logged_out_share (0.0355) and logged_out_page_share resemble the sample's."""

SESSIONS_PER_USER_DAY = {1: 0.7779, 2: 0.1542, 3: 0.0566, 4: 0.0085, 5: 0.0028}
"""sessions_per_user_day."""

USER_ACTIVITY_SIGMA = 1.0
"""Log-normal spread of how often a user comes back; chosen so that
active_days_per_user_quantiles of generated data resemble the sample's
(1, 2, 3, 3, 4, 6, 8, 10, 11, 14.4, 17, 23, 28 days of 30)."""

HOUR_SHARE = (
    # hour_share: events per hour of the day (UTC), used for session starts
    0.0230, 0.0250, 0.0195, 0.0161, 0.0197, 0.0256, 0.0286, 0.0272, 0.0305, 0.0386, 0.0442, 0.0485,
    0.0457, 0.0515, 0.0626, 0.0716, 0.0777, 0.0710, 0.0719, 0.0535, 0.0493, 0.0405, 0.0307, 0.0277,
)

WEEKDAY_WEIGHT = (304, 315, 402, 247, 305, 178, 125)
"""mean_events_by_weekday, Monday first: how a day's share of --events is weighted."""

GAP_AFTER_WHOLE_SONG = 0.9394
"""gap_after_song_is_whole_song_share: the next event comes floor(length) s after a play;
otherwise (a skip) the gap is drawn like any other gap."""
GAP_QUANTILES = (0.0, 1.0, 10.0, 22.0, 41.2, 69.0, 110.8, 165.0, 235.4, 455.7, 850.95, 1899.25, 3486.0)
"""gap_other_quantiles: seconds between an event that is not a play and the next one."""

FEMALE_SHARE = 0.567
"""gender_share."""
FIRST_LEVEL_PAID = 0.1546
"""first_level_share: a user's level at their first event."""
REGISTRATION_DAYS_QUANTILES = (
    # registration_days_before_first_event_quantiles
    0.507, 1.535, 3.582, 4.865, 5.697, 7.481, 9.068, 10.785, 14.739, 19.531, 25.706, 32.007, 36.572,
)
LOCATIONS_PER_USER = 0.649
"""distinct_locations_per_user: the pool of metro areas is this share of the users (at least 20)."""
AGENTS_PER_USER = 0.412
"""distinct_agents_per_user: likewise for user agents (at least 12, at most 400)."""
BROWSER_SHARE = {"Chrome": 0.4639, "Firefox": 0.2474, "Safari": 0.1856, "iPhone": 0.0619, "Trident": 0.0412}
"""browser_share; agent_quoted_iff_comma: an agent is wrapped in double quotes exactly when it holds a comma."""

PLAY_LENGTH_LOG = (5.447, 0.356)
"""play_length_log_mean_sd: seconds, log-normal, of songs played that are not in the catalogue."""
PLAY_POPULARITY_OFFSET = 25
PLAY_UNIVERSE = 1_000_000
"""Song popularity ~ 1 / (rank + 25) over a million songs (the Million Song Dataset's size):
gives distinct_play_share 0.72-0.74 and top_play_share about 0.005 at the sample's 6,820 plays
(the sample: 0.776 and 0.0054)."""

NON_ASCII_WORD_SHARE = 0.010
NON_ASCII_NAME_SHARE = 0.017
"""A title word (a name part) is accented with this probability: gives non_ascii_share
(song 0.0224, artist 0.0283) for titles of about 2.3 words and names of one or two parts."""
MOJIBAKE_ROUNDS_SHARE = {2: 0.9, 1: 0.1}
"""mojibake_share equals non_ascii_share in the sample: every accented value in the logs is
mis-decoded, all of them twice; once-only is added at 10 % so the single round is exercised too."""

ARTISTS_PER_SONG = 0.972
"""artists_per_song (catalogue)."""
DURATION_LOG = (5.3666, 0.525)
"""duration_log_mean_sd: catalogue durations in seconds, log-normal."""
YEAR_UNKNOWN_SHARE = 0.606
YEAR_QUANTILES = (1961.0, 1971.1, 1984.4, 1987.5, 1993.8, 1997.0, 2000.0, 2003.0, 2004.0, 2005.0,
                  2006.3, 2007.73, 2008.0)
"""year_unknown_share (year 0) and year_quantiles of the known years."""
ARTIST_LOCATION_EMPTY = 0.394
ARTIST_LOCATED_WITHOUT_COORDINATES = 0.169
"""location_empty_share (those have no coordinates either) and located_without_coordinates_share."""

CATALOGUE_SONGS = 14_896
"""The original project's full song catalogue, the default --songs."""
MATCH_RATE = 0.05
"""Share of plays drawn from the catalogue: about what the full catalogue matches in the real logs."""
