"""The plan: loading and checking plan documents, versions, calendars and holidays."""
