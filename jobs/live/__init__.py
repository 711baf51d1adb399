"""The live feed: job events published after each commit (``events``), the WebSocket
consumer that forwards them and replays missed ones from the log (``consumers``), and its
authenticated route (``routing``)."""
