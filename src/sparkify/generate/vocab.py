"""Small vocabularies the generator composes names, titles, places and agents from.

Written for the generator (common words and names, US metro-style places),
not taken from the sample. Accented entries are kept apart so their share can
be controlled (params.NON_ASCII_WORD_SHARE).
"""

from __future__ import annotations

FEMALE_NAMES = (
    "Abigail", "Alice", "Amelia", "Anna", "Ava", "Brooke", "Camila", "Chloe", "Claire", "Diana", "Elena",
    "Ella", "Emily", "Emma", "Evelyn", "Faith", "Grace", "Hailey", "Hannah", "Isabel", "Jade", "Julia",
    "Katherine", "Laura", "Leah", "Lily", "Lucy", "Madison", "Maya", "Mia", "Naomi", "Natalie", "Nora",
    "Olivia", "Paige", "Rachel", "Ruby", "Sarah", "Sofia", "Stella", "Tessa", "Victoria", "Zoe",
)
MALE_NAMES = (
    "Aaron", "Adam", "Adrian", "Andrew", "Ben", "Brandon", "Caleb", "Carlos", "Daniel", "David", "Dylan",
    "Eli", "Ethan", "Evan", "Felix", "Gabriel", "Henry", "Isaac", "Jack", "Jacob", "James", "Jason",
    "Jordan", "Joseph", "Julian", "Kevin", "Leo", "Liam", "Lucas", "Marcus", "Mason", "Nathan", "Noah",
    "Oscar", "Owen", "Ryan", "Samuel", "Simon", "Thomas", "Tyler", "Victor", "Wyatt", "Xavier",
)
LAST_NAMES = (
    "Adams", "Allen", "Baker", "Bell", "Brooks", "Campbell", "Carter", "Clark", "Collins", "Cook", "Cooper",
    "Diaz", "Edwards", "Evans", "Fisher", "Flores", "Foster", "Garcia", "Gray", "Green", "Hall", "Harris",
    "Hayes", "Hill", "Howard", "Hughes", "Jenkins", "Kelly", "King", "Lee", "Lewis", "Long", "Lopez",
    "Martin", "Mitchell", "Moore", "Morgan", "Murphy", "Nelson", "Parker", "Perez", "Price", "Reed",
    "Rivera", "Roberts", "Rogers", "Ross", "Sanders", "Scott", "Stewart", "Sullivan", "Taylor", "Turner",
    "Walker", "Ward", "Watson", "White", "Wood", "Wright", "Young",
)

TITLE_WORDS = (
    "Angel", "Another", "Autumn", "Baby", "Back", "Bad", "Ballad", "Beautiful", "Believe", "Big", "Black",
    "Blue", "Blues", "Boy", "Break", "Broken", "Burning", "City", "Cold", "Come", "Crazy", "Cry", "Dance",
    "Dark", "Day", "Days", "Dead", "Deep", "Devil", "Down", "Dream", "Dreams", "Drive", "Electric", "End",
    "Every", "Eyes", "Fall", "Fire", "Forever", "Free", "Funk", "Ghost", "Girl", "Go", "Gold", "Gone",
    "Good", "Heart", "Heaven", "High", "Home", "Honey", "Hot", "Hurt", "Ice", "In", "Into", "Island",
    "Kiss", "Last", "Let", "Life", "Light", "Little", "Live", "Lonely", "Long", "Lost", "Love", "Low",
    "Mad", "Man", "Memories", "Midnight", "Mind", "Miss", "Moon", "Morning", "My", "Never", "New", "Night",
    "No", "Not", "Ocean", "Old", "On", "One", "Only", "Out", "Paradise", "Party", "Rain", "Red", "Ride",
    "River", "Road", "Rock", "Roll", "Run", "Sad", "Say", "Sea", "Secret", "Shadow", "Shine", "Sky",
    "Slow", "Smile", "Song", "Soul", "Star", "Stay", "Stop", "Storm", "Street", "Summer", "Sun",
    "Sunday", "Sweet", "Take", "Tears", "Time", "Tonight", "Train", "True", "Up", "Wait", "Walk", "War",
    "Water", "Way", "Wild", "Wind", "Wine", "Winter", "With", "World", "You", "Young", "Your",
)
TITLE_WORDS_ACCENTED = (
    "Café", "Corazón", "Mañana", "Niño", "Été", "Für", "Señor", "Canción", "Déjà", "Mädchen",
    "Rêve", "Jalapeño", "Fiancée", "Über", "Ação",
)
TITLE_SUFFIXES = (" (Album Version)", " (LP Version)", " (Live)", " (Remix)", " (Remastered)",
                  " (Instrumental Version)", " (Radio Edit)", " (Acoustic)")

BAND_WORDS = (
    "Arcade", "Atlas", "Black", "Blue", "Bright", "Broken", "Cloud", "Crystal", "Cult", "Dead",
    "Electric", "Empire", "Fire", "Flying", "Ghost", "Glass", "Golden", "Gravity", "Harbor", "Iron",
    "Jungle", "Lions", "Machine", "Mirror", "Neon", "Night", "Ocean", "Paper", "Phantom", "Radio",
    "Rebels", "Red", "River", "Saints", "Silver", "Sonic", "Stone", "Storm", "Sugar", "Velvet",
    "Wolves", "Young",
)
ACCENTED_NAME_PARTS = ("Björk", "Renée", "José", "Zoë", "Müller", "Núñez", "Søren", "Chloé", "Sigur Rós",
                       "Beyoncé")

CITIES = (
    "Ashford", "Bayview", "Bellmont", "Brookfield", "Carlton", "Cedar Falls", "Clearwater", "Crestview",
    "Dover", "Eastport", "Elmwood", "Fairview", "Franklin", "Glenwood", "Granite City", "Greenville",
    "Hamilton", "Harrison", "Highland", "Kingston", "Lakeside", "Lancaster", "Lexington", "Madison",
    "Maple Grove", "Marion", "Millbrook", "Newport", "Oak Ridge", "Oakdale", "Pinehurst", "Plainfield",
    "Port Royal", "Riverside", "Rockford", "Salem", "Shelby", "Springfield", "Stanton", "Summit",
    "Troy", "Union City", "Westfield", "Weston", "Winchester", "Woodbury",
)
STATES = (
    "AL", "AZ", "CA", "CO", "CT", "FL", "GA", "IA", "IL", "IN", "KS", "KY", "LA", "MA", "MD", "MI", "MN",
    "MO", "NC", "NJ", "NV", "NY", "OH", "OK", "OR", "PA", "SC", "TN", "TX", "UT", "VA", "WA", "WI",
)
COUNTRIES = ("England", "Canada", "Germany", "France", "Sweden", "Australia", "Brazil", "Japan", "Ireland",
             "Norway", "Italy", "Spain", "Jamaica", "Mexico")

AGENT_PLATFORMS = {
    # browser family: (platform strings, template); the platform fills {os}
    "Chrome": (("Windows NT 6.1; WOW64", "Windows NT 6.3; WOW64", "Windows NT 5.1", "Windows NT 6.1",
                "Macintosh; Intel Mac OS X 10_9_4", "Macintosh; Intel Mac OS X 10_9_3",
                "Macintosh; Intel Mac OS X 10_8_5", "X11; Linux x86_64"),
               "Mozilla/5.0 ({os}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.{build}.{patch} "
               "Safari/537.36"),
    "Firefox": (("Windows NT 6.1; WOW64", "Windows NT 6.1", "Windows NT 5.1", "Macintosh; Intel Mac OS X 10.9",
                 "Macintosh; Intel Mac OS X 10.7", "X11; Linux x86_64", "X11; Ubuntu; Linux i686"),
                "Mozilla/5.0 ({os}; rv:{major}.0) Gecko/20100101 Firefox/{major}.0"),
    "Safari": (("10_9_4", "10_9_3", "10_9_2", "10_8_5", "10_10"),
               "Mozilla/5.0 (Macintosh; Intel Mac OS X {os}) AppleWebKit/537.{build}.{patch} (KHTML, like Gecko) "
               "Version/7.0.{major} Safari/537.{build}.{patch}"),
    "iPhone": (("7_1_1", "7_1_2", "7_0_4"),
               "Mozilla/5.0 (iPhone; CPU iPhone OS {os} like Mac OS X) AppleWebKit/537.51.2 (KHTML, like Gecko) "
               "Version/7.0 Mobile/11D{build} Safari/9537.53"),
    "Trident": (("Windows NT 6.1", "Windows NT 6.2; WOW64", "Windows NT 6.3; WOW64"),
                "Mozilla/5.0 (compatible; MSIE {major}.0; {os}; Trident/{patch}.0)"),
}
