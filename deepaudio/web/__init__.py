"""The playground server: the app factory, the database, uploads, the job runner, and one
blueprint per page. The only layer that imports the pipelines; nothing imports it but the
command line that serves it."""
