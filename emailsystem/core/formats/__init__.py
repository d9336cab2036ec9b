"""Date and time formats for the pages Django renders (the admin): seconds and the time zone on every
datetime, so sends a second apart are told apart and nobody guesses the zone. Named by FORMAT_MODULE_PATH."""
