"""The Activations tab: its Qt-free state and rules (:mod:`.model`), its widgets (:mod:`.view`)
and the table of dropped files (:mod:`.drop_table`)."""
