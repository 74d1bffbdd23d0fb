"""Teams own assistants; members have a role; the audit log says who changed what (issue 15)."""
