"""Agent and queue reports from the KPI registry, drill-downs, exports, and plan targets."""
