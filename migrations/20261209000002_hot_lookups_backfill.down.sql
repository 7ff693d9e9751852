-- Nothing to undo: the back-filled values go with their columns (20261209000001's down).
SELECT 1;
