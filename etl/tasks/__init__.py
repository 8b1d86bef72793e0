"""Tasks compose the stages (vendor -> validate -> lake) and keep resumable records."""
