"""Reports (`pbx report`): figures derived from the CDRs, the queue journal and agent events.

Nothing here is kept: every figure is computed from the store's rows for the period, so there is
no second bookkeeping to drift from the first (Asterisk's queue_log reports, Wazo's stat_call_on_queue
built from queue_log).  ``model`` turns rows into one record per queued call and per CDR,
``agents`` turns agent events into time per state, ``figures`` aggregates them by a grouping;
all three are pure (rows and the period in, figures out).  ``load`` reads the rows from a Store.
"""
