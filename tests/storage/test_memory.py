from stratasync.storage import EventStore
from stratasync.storage.memory import InMemoryEventStore
from tests.storage.conformance import EventStoreConformance

_SHARED = InMemoryEventStore()


class TestInMemoryEventStore(EventStoreConformance):
    def create_store(self) -> EventStore:
        # Instances of one "deployment" share state, as DynamoDB adapters share a table.
        return _SHARED
