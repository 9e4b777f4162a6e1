"""Evaluation metrics, one module per family: ``invariance`` (auto-pooling's invariance score), ``pr``
(precision-recall of nearest neighbours and its area), ``retrieval`` (average precision under the INRIA Holidays
and Oxford protocols, mAP), ``classification`` (per-item correctness and accuracy of a trained model)."""
