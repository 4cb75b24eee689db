"""What the station says to the centre: the protocol models, the client, the offline batch files."""
