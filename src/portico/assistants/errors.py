from portico.errors import InvalidRequest, NotFound


class AssistantNotFound(NotFound):
    code = "not_found"
    message = "No assistant with this id."


class DraftInvalid(InvalidRequest):
    code = "draft_invalid"
    message = "The draft cannot be published."
