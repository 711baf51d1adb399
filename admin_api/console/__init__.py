"""The operator console's pages beyond the jobs: each module one page (its views, its
queries) and its ``urlpatterns``, which ``admin_api.dashboard`` includes."""
