"""The shop's one model: a product, its stock, the labels printed for it and its last
restock."""

from __future__ import annotations

from django.db import models


class Product(models.Model):
    sku = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    stock = models.PositiveIntegerField(default=0)
    labels_printed = models.PositiveIntegerField(default=0)
    restocked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("sku",)

    def __str__(self) -> str:
        return f"{self.sku} ({self.stock} in stock)"
