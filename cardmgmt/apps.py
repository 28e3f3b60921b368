from django.apps import AppConfig


class CardmgmtConfig(AppConfig):
    name = "cardmgmt"
    verbose_name = "Cards and subscribers"
