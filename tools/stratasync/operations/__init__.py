"""Operating a store directly on the backend's storage: ``stratasync backend list|inspect|tail|
export|import|delete|reset|restore``.

* :mod:`.target` - which table and bucket (or deployed stack), and the clients to reach them;
* :mod:`.inspect` - ``list`` and ``inspect`` (read only);
* :mod:`.transfer` - ``tail``, ``export`` and ``import``;
* :mod:`.erase` - ``delete`` and ``reset``: fence the store, wait out writes in flight, erase;
* :mod:`.restore` - ``restore`` from the S3 segments under the backend id the archive recorded;
* :mod:`.journal` - each changing operation's steps, said as they are done, so a stopped one says
  what is left (and running it again finishes it).

The DynamoDB side of these (fences, an operation's state in ``meta``) is the adapter's own:
:mod:`stratasync.storage.dynamodb_admin`.
"""

from stratasync.operations.journal import Journal
from stratasync.operations.target import Connection, OperationError, Target, connect, target_from_stack

__all__ = ["Connection", "Journal", "OperationError", "Target", "connect", "target_from_stack"]
