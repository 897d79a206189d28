from stratasync.storage import EventLogStorage
from stratasync.storage.memory import InMemoryStorage
from stratasync.testing.event_log import EventLogStorageConformance

_SHARED = InMemoryStorage()


class TestInMemoryStorage(EventLogStorageConformance):
    def create_store(self) -> EventLogStorage:
        # Instances of one "deployment" share state, as DynamoDB adapters share a table.
        return _SHARED
