"""The read side over the co-travel store: queries, the same-trip lookup, the networkx contact graph
and its pictures and exports."""
