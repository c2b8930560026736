"""The Dataset tab: its Qt-free state and rules (:mod:`.model`) and its widgets (:mod:`.view`)."""
