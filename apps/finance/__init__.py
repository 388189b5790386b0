"""Financial news sentiment monitor: ingest feeds, score articles, build the knowledge graph, alert."""
