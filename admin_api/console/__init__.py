"""The operator console's pages beyond the dashboard's index (issue 15), one module each,
registered in ``admin_api.dashboard``'s urlpatterns."""
