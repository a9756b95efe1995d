"""Image backends behind one protocol: the egaku worker over HTTP (remote or embedded), or OpenAI's Images API."""
